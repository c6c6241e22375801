"""The hostile-input suite (issue 14): every server and the reconciler against tables of attacks."""
