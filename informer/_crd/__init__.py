"""Custom resources defined in Python: pydantic models, their structural schema, the
CustomResourceDefinition built from them, and models generated from existing CRDs.

The public home is :mod:`informer.crd` (and ``python -m informer.crd``). This folder
needs pydantic v2, an optional extra (``pip install kube-informer[crd]``): nothing in
the rest of the library imports it.

- ``markers.py``: ``Annotated`` markers for the ``x-kubernetes-*`` extensions;
- ``declaration.py``: ``Definition`` (names, scope) and ``Version`` (one per class);
- ``model.py``: ``Schema``, ``ObjectMeta``, ``CustomResource`` (parse, to_dict, to_apply);
- ``well_known.py``: ``Condition``, ``LabelSelector``;
- ``schema.py``: a model's JSON schema made structural;
- ``definition.py``: the CRDs of a set of classes;
- ``codegen.py``: models from a CRD;
- ``loader.py``: the commands' ``module:Class`` targets.
"""
