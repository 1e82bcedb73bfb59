"""First-party plugins. Each subpackage's `__init__` holds only hook implementations (no torch import);
the components themselves live in its modules and are imported when first used."""
