"""The pure core: order rules, stock rules and the saga. Standard library only; no I/O, no Faust."""
