"""Admission and conversion webhooks, served by the Manager (controller-runtime's
``pkg/webhook`` with ``admission`` and ``conversion``); public home: ``informer.webhook``.

- ``base``: what the server needs of a webhook (:class:`~.base.Webhook`), ``ReviewError``;
- ``review``: the AdmissionReview ``admission.k8s.io/v1`` decoded and answered;
- ``admission``: validating and mutating webhooks, their handlers (functions,
  ``Validator``, ``Defaulter``), ``Denied``, the timeout and failure rules;
- ``patch``: the minimal RFC 6902 JSON patch of a mutation (and applying one);
- ``conversion``: CRD conversion by hub and spoke, ``check_round_trip``;
- ``configuration``: the Validating/MutatingWebhookConfiguration and CRD
  ``spec.conversion`` generated from the webhooks;
- ``metrics``: ``controller_runtime_webhook_*``;
- ``server``: the HTTPS server of every webhook (the package's one HTTP server), its
  certificate reload and readiness check.
"""
