"""Causal attention for steering (Kim & Canny, ICCV 2017): attention model, regulariser, causal
filtering, evaluation against the known cause of the synthetic roads, and the report section."""
