"""Form and flow definitions: their formats (meta-schemas), files, checks and stored versions."""
