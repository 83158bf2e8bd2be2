"""The three models of the VirNucPro prediction path, one file each."""
