"""Running a django-fsm transition and saving what it changed, for every state machine."""


def apply_transition(instance, transition_method, *, at, **changes) -> None:
    """Run a transition (transitions only set fields on self), set `changes` with it, and save
    exactly the fields that changed."""
    fields = [f.attname for f in type(instance)._meta.concrete_fields]
    before = {name: getattr(instance, name) for name in fields}
    transition_method(at=at)
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.save(
        update_fields=[name for name in fields if getattr(instance, name) != before[name]]
    )
