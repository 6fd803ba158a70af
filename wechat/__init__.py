"""Everything WeChat shapes: callback, crypto, outbound clients, and the offline sandbox."""
