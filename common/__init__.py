"""Model-independent code of the project. Importing it first quiets TensorFlow's logs (see
log_setup), which must happen before TensorFlow loads."""
import sys

from common import log_setup

log_setup.quiet(sys.argv)
