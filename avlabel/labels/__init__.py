"""Label vocabularies (``LabelSet``) and the text normalisation applied before embedding them."""

from avlabel.labels.label_set import LabelSet
from avlabel.labels.loading import list_label_sets, load_label_set

__all__ = ["LabelSet", "list_label_sets", "load_label_set"]
