# The GSCNN DeepLabV3+ CamVid config with the sweep's diagnostic variants
# registered (sweep_variants.py: OldDualTaskLoss, SWEEP_NOBAND=1).
_base_ = ['../../../configs/gscnn/gscnn-deeplabv3plus_r18-d8_1xb8-20k_camvid-360x480.py']
custom_imports = dict(imports=['mmgscnn', 'sweep_variants'], allow_failed_imports=False)
