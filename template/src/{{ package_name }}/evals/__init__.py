"""The eval suite: versioned cases, scorers from exact match to LLM-as-judge, reports, gates."""
