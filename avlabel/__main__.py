"""``python -m avlabel`` (what ``torchrun -m avlabel train ...`` runs)."""

from avlabel.cli import main

if __name__ == "__main__":
    main()
