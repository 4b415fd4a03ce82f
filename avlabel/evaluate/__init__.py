"""Evaluation: classification and relevance metrics, multi-view testing, run comparison reports
and throughput benchmarks.

Modules: ``metrics`` (top-k, class accuracy, confusion matrix, relevance ROC-AUC/precision/recall),
``multiview`` (spatial crops x temporal clips, softmax averaged per video, paper section 4.1),
``runner`` (``avlabel eval`` / ``avlabel predict`` cores), ``plots`` (the confusion-matrix PNG),
``report`` (tables shaped like the paper's Tables 3-5) and ``bench`` (training/inference clips/s,
memory, model FLOPs utilisation).
Importing the package is cheap; each module imports what it needs.
"""
