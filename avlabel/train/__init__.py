"""Training: the IMD objective (paper section 3.5), intra-class cross-modality augmentation
(section 3.6), AVT's objectives and the distributed training loop behind ``avlabel train``.

Modules, one job each: ``config`` (the typed YAML configuration), ``checkpoint`` (safetensors
weights + resumable state, ``load_run``), ``preflight`` (every input check before training
starts), ``items`` (training items: video clip + cached audio + augmentation), ``sampler``
(the resumable distributed sampler), ``objective`` (the IMD loss), ``avt_objective`` (AVT's
losses and masks), ``distributed`` (torchrun/DDP
set-up), ``runlog`` (metrics.jsonl, TensorBoard, progress bar, environment record) and ``loop``
(the loop itself, readable top to bottom). Importing the package is cheap.
"""
