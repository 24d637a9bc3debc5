"""On-device training: backward graphs, sparse updates, training data and exporting trained weights."""
