"""avlabel: multimodal action recognition with learnable irrelevant modality dropout (IMD).

The package is organised by pipeline stage: ``labels`` (label vocabularies), ``embed`` (text
embedding backends), ``savld`` (the semantic audio-video label dictionary), ``audio`` (AST
tagging, feature cache, relevance targets), ``data`` (manifests, decoding, sampling, flow,
synthetic benchmark), ``models`` (two-stream Transformer, fusion heads, IMD), ``train``,
``evaluate``, ``bench`` (throughput of the model configs) and ``cli``. Importing the package is
cheap: nothing heavy is imported here.
"""

__version__ = "0.1.0"
