"""cnninterp: a reproducible pipeline that measures what a CNN has learned.

Heavy libraries (torch, torchvision, pandas, matplotlib) are imported only inside the
functions that need them, so that ``cnninterp --help`` and light CLI steps stay fast.
"""

__version__ = "0.1.0"
