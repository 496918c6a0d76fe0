"""cliqhost invoke and keygen (filled in with the feature)."""
import unittest

if __name__ == "__main__":
    unittest.main()
