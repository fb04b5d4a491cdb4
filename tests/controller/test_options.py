"""``ControllerOptions``: one validated value for a controller's tuning, and how a
``Controller`` builds it from its class attributes, its arguments and later assignments.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from informer import Controller, ControllerOptions, Result, SharedInformerFactory
from informer._controller.naming import component_of, kebab
from informer.workqueue import ExponentialFailureRateLimiter, default_controller_rate_limiter

pytestmark = pytest.mark.timeout(30)


def factory() -> SharedInformerFactory:
    return SharedInformerFactory(None)


class Plain(Controller):
    async def reconcile(self, key: str) -> Result | None:
        return None


def test_defaults_match_the_controller_class_attributes() -> None:
    options = ControllerOptions()
    assert (options.workers, options.max_retries, options.shutdown_grace) == (
        Controller.workers,
        Controller.max_retries,
        Controller.shutdown_grace,
    )
    assert options.rate_limiter is None and options.new_rate_limiter() is None
    assert Plain(factory(), None).options == options


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("workers", 0, ValueError("workers must be an int >= 1, got 0")),
        ("workers", 2.5, ValueError("workers must be an int >= 1, got 2.5")),
        ("workers", True, ValueError("workers must be an int >= 1, got True")),
        ("max_retries", -1, ValueError("max_retries must be an int >= 0, got -1")),
        ("max_retries", "3", ValueError("max_retries must be an int >= 0, got '3'")),
        ("shutdown_grace", -0.5, ValueError("shutdown_grace must be seconds >= 0, got -0.5")),
        ("shutdown_grace", math.nan, ValueError("shutdown_grace must be seconds >= 0, got nan")),
        ("rate_limiter", ExponentialFailureRateLimiter(0.01, 1), TypeError("must be a factory")),
    ],
    ids=["workers-zero", "workers-float", "workers-bool", "retries-negative", "retries-str",
         "grace-negative", "grace-nan", "limiter-instance"],
)  # fmt: skip
def test_each_field_is_validated_naming_it(field: str, value: object, error: Exception) -> None:
    with pytest.raises(type(error), match=str(error).replace("(", r"\(").replace(".", r"\.")):
        ControllerOptions(**{field: value})  # type: ignore[arg-type]


def test_options_are_frozen_and_a_replacement_is_validated() -> None:
    options = ControllerOptions(workers=2, shutdown_grace=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 3  # type: ignore[misc]
    assert dataclasses.replace(options, max_retries=0).max_retries == 0
    with pytest.raises(ValueError, match="max_retries must be an int >= 0"):
        dataclasses.replace(options, max_retries=-1)


def test_every_new_rate_limiter_is_a_new_limiter() -> None:
    options = ControllerOptions(rate_limiter=default_controller_rate_limiter)
    first, second = options.new_rate_limiter(), options.new_rate_limiter()
    assert first is not None and second is not None and first is not second


def test_the_controller_builds_its_options_from_class_attributes_and_arguments() -> None:
    class Tuned(Plain):
        workers = 3
        max_retries = 2
        shutdown_grace = 0.5
        rate_limiter = default_controller_rate_limiter

    assert Tuned(factory(), None).options == ControllerOptions(
        workers=3, max_retries=2, shutdown_grace=0.5, rate_limiter=default_controller_rate_limiter
    )
    own = Tuned(factory(), None, workers=1, max_retries=0, shutdown_grace=0)
    assert (own.options.workers, own.options.max_retries, own.options.shutdown_grace) == (1, 0, 0)
    assert own.options.rate_limiter is default_controller_rate_limiter


def test_assigning_a_tuning_attribute_validates_it_and_replaces_the_options() -> None:
    """As the Manager does when it caps ``shutdown_grace`` after building a controller."""
    controller = Plain(factory(), None)
    before = controller.options
    controller.shutdown_grace = 0.25
    controller.max_retries = 1
    assert controller.options == dataclasses.replace(before, shutdown_grace=0.25, max_retries=1)
    assert (controller.shutdown_grace, controller.max_retries) == (0.25, 1)
    with pytest.raises(ValueError, match=r"^Plain: workers must be an int >= 1, got 0$"):
        controller.workers = 0
    assert controller.workers == 1 and controller.options.workers == 1  # unchanged
    with pytest.raises(AttributeError):
        controller.options = before  # type: ignore[misc]


def test_the_controller_prefixes_errors_with_its_class_name() -> None:
    with pytest.raises(ValueError, match=r"^Plain: shutdown_grace must be seconds >= 0"):
        Plain(factory(), None, shutdown_grace=-1)

    class Shared(Plain):
        rate_limiter = ExponentialFailureRateLimiter(0.01, 1)  # type: ignore[assignment]

    with pytest.raises(TypeError, match=r"Shared: rate_limiter must be a factory"):
        Shared(factory(), None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ConfigMapReloader", "config-map-reloader"), ("HTTPProxy", "http-proxy"),
     ("A", "a"), ("Web2Route", "web2-route")],
    ids=["words", "acronym", "one-letter", "digit"],
)  # fmt: skip
def test_kebab(name: str, expected: str) -> None:
    assert kebab(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("reloader@ns1", "reloader"), ("my controller!", "my-controller"), ("@ns", "controller")],
    ids=["namespace-suffix", "unqualified", "empty"],
)  # fmt: skip
def test_component_of(name: str, expected: str) -> None:
    assert component_of(name) == expected


def test_an_attribute_set_before_the_base_constructor_is_the_instance_default() -> None:
    class Early(Plain):
        def __init__(self, factory: SharedInformerFactory) -> None:
            self.max_retries = 4
            super().__init__(factory, None)

    assert Early(factory()).options.max_retries == 4
