"""Video data: manifests, decoding, clip sampling, transforms, optical flow, synthetic benchmark.

Modules, one job each (import the one you need; this package imports nothing heavy):

- `avlabel.data.manifest` — the one CSV manifest format every dataset is converted to.
- `avlabel.data.adapters` — Kinetics / UCF-101 / HMDB51 / folder-tree layouts -> manifest.
- `avlabel.data.decode` — PyAV container opening and seek-based frame-accurate decoding.
- `avlabel.data.writer` — writing real video/audio files with PyAV.
- `avlabel.data.sampling` — which frame indices a training or test clip uses.
- `avlabel.data.transforms` — batched crop / flip / resize / normalise on ``(C, T, H, W)``.
- `avlabel.data.flow_estimators` — optical flow estimators (OpenCV's, and avlabel's PyTorch TV-L1
  in `avlabel.data.flow_torch`); `avlabel.data.flow_format` — uint8 storage and readers
  (incl. denseflow); `avlabel.data.flow_extract` — the resumable extraction job (``avlabel flow``).
- `avlabel.data.flow_torch` — TV-L1 flow as batched PyTorch code (CPU or CUDA), ``tvl1-torch``.
- `avlabel.data.flow_truth` — frame pairs with known flow, end-point error (accuracy checks).
- `avlabel.data.dataset` — the PyTorch ``VideoClipDataset`` and ``collate_clips``.
- `avlabel.data.synth` — the synthetic audio-visual benchmark (classes, sounds, visuals, writer).
"""
