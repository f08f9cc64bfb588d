// NeoX module.
