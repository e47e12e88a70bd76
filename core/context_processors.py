from django.conf import settings


def lojix(request):
    return {"currency": settings.LOJIX_CURRENCY}
