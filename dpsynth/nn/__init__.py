"""Vetted neural building blocks the private table runs on its rows.

Layouts (rows <-> features, from the public schema), CTGAN's discriminator and
the real rows' conditioning for DP-SGD, and PATE's teacher classifier.  The
private table builds them itself from public numbers; no caller-supplied code
runs on the rows (proofs/threat_model.md).  Imports nothing above `schema`.
"""

from .conditioning import RealConditioning
from .discriminator import Discriminator, DiscriminatorSpec
from .layout import CategoricalBlock, ColumnFacts, NumericBlock, TableTransformer, column_facts
from .label_teacher import LabelTeacherSpec
from .teacher import TeacherSpec

__all__ = ["TableTransformer", "CategoricalBlock", "NumericBlock", "ColumnFacts", "column_facts",
           "Discriminator", "DiscriminatorSpec", "RealConditioning", "TeacherSpec", "LabelTeacherSpec"]
