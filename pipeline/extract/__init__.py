"""LaTeX bundle -> figures, captions and text; rasterising; safety limits. No LaTeX compiler."""
