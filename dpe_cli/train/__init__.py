"""Training DPE: the paper's bidirectional cyclic training (Pang et al., CVPR 2023, Sec. 3.2 to 4.1).

One module per job, as in NVIDIA's StyleGAN3 code: ``options`` (every option resolved and
checked before anything loads, resume compatibility), ``data`` (clips, frame cache, pair
sampling), ``vgg`` and ``expression`` (the frozen loss networks), ``losses`` (the loss terms),
``objectives`` (the forward passes and the objectives, on one ``Objective`` base),
``trainer`` (models, optimizers, one step), ``state`` (checkpoints and exact resume),
``distributed`` (``torchrun`` set-up), ``stopping`` (Ctrl-C/SIGTERM between steps), ``report``
(metrics log, TensorBoard, sample grids), ``loop`` (the training loop) and ``prepare`` (raw
videos to face crops). The heavy modules are imported on use, so ``import dpe_cli.train``
stays cheap.
"""
