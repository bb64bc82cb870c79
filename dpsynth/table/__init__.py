"""The private table: the only holder of raw rows; every method is a charged measurement."""

from .dpsgd import AccessError
from .measurement import Measurement, NoisyMarginal
from .pate import TeacherEnsemble, keyed_partition
from .private_table import PrivateTable
from .rows import UnchargedAccess

__all__ = ["PrivateTable", "NoisyMarginal", "Measurement", "UnchargedAccess", "AccessError", "TeacherEnsemble",
           "keyed_partition"]
