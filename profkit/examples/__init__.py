"""Small example programs bundled for `profkit demo` and the tests."""
