"""Documents in, chunks out: loaders (files to text), chunking, and the incremental pipeline."""
