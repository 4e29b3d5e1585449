# Dual Focal Loss (Hossain et al.; imbfocal's reconstruction from the abstract), scaled for
# dense heads. The class defaults (nu=0.1, beta=1) add 0.1 of plain cross-entropy and a
# regulariser of slope about beta on every one of a batch's (anchors x classes) elements: at
# p = 0.01 a background element's focal term is 7.5e-7, these two 1e-3 and 1e-2. Summed over
# 1.6 million elements and divided by the positives they swamp focal loss, and RetinaNet on
# digits-LT lt100's val split reached
# AP 18.8 (focal 66.9). nu=0.01 and beta=0.01 reached AP 66.4 / APr 60.2 (focal 59.5)
# (docs/results/lt100_retinanet_val.md). Use as cb-focal.py (no heatmap form for CenterNet).
loss_cls = dict(
    _delete_=True,
    type='DualFocalLoss',
    use_sigmoid=True,
    gamma=2.0,
    nu=0.01,
    beta=0.01,
    rho=1.0,
    loss_weight=1.0)
