"""Training DPE: the paper's bidirectional cyclic training (Pang et al., CVPR 2023, Sec. 3.2 to 4.1).

One module per job, as in NVIDIA's StyleGAN3 code: ``data`` (clips, frame cache, pair
sampling), ``vgg`` and ``expression`` (the frozen loss networks), ``losses`` (the cycle forward
pass and the objectives), ``state`` (checkpoints and exact resume), ``loop`` (the training
loop, distribution, precision, feedback) and ``prepare`` (raw videos to face crops). The
heavy modules are imported on use, so ``import dpe_cli.train`` stays cheap.
"""
