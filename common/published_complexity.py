"""The published complexity of the paper's models: the one source for the notebook's comparison
(common/notebook_utils.py) and the profiler tests (tests/test_profile.py). Pure data."""

# FLOPs per pixel (at 512x768) and parameters per module, as the paper's code published them
# (shallow-ntc results/flops_per_pixel.csv and notebooks/get_flops.ipynb). Parameter counts are
# published only for some modules; h_a/h_s ones are for a 320-channel latent.
_HYPER_PARAMS = dict(h_a=6042560, h_s=9166240)
PUBLISHED = {
    "Ballé 2017": dict(
        flops_per_pixel=dict(g_a=163264, h_a=0, g_s=163266, h_s=0, decode=163266), params={}),
    "Minnen 2018": dict(
        flops_per_pixel=dict(g_a=187583, h_a=13452, g_s=187585, h_s=30355, decode=217940),
        params=dict(g_s=3431235, **_HYPER_PARAMS)),
    "JPEG-like syn.": dict(
        flops_per_pixel=dict(g_a=510846, h_a=13452, g_s=2433, h_s=30355, decode=32788),
        params=dict(g_a=7337792, g_s=311043, **_HYPER_PARAMS)),
    "2-layer syn.": dict(
        flops_per_pixel=dict(g_a=510846, h_a=13452, g_s=10680, h_s=30355, decode=41035),
        params=dict(g_a=7337792, g_s=1299003, **_HYPER_PARAMS)),
    "ELIC (for comparison)": dict(
        flops_per_pixel=dict(g_a=510846, h_a=13452, g_s=510847, h_s=253131, decode=763978),
        params=dict(g_a=7337792)),
}
