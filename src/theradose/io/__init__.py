"""Input and output at the edges: DICOM, masks, NIfTI."""
