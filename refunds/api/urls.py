from django.urls import path

from refunds.api import views

SUPPORT_ACTIONS = {
    "approve": views.SupportApproveApi,
    "partially-approve": views.SupportPartiallyApproveApi,
    "deny": views.SupportDenyApi,
    "request-info": views.SupportRequestInfoApi,
    "ask-restaurant": views.SupportAskRestaurantApi,
    "offer-credit": views.SupportOfferCreditApi,
    "offer-replacement": views.SupportOfferReplacementApi,
    "second-approval": views.SupportSecondApprovalApi,
}

urlpatterns = [
    path(
        "refund-requests/", views.RefundRequestListCreateApi.as_view(), name="api-refund-requests"
    ),
    path(
        "refund-requests/<int:pk>/",
        views.RefundRequestDetailApi.as_view(),
        name="api-refund-request",
    ),
    path(
        "refund-requests/<int:pk>/evidence/",
        views.RefundRequestEvidenceApi.as_view(),
        name="api-refund-request-evidence",
    ),
    path(
        "refund-requests/<int:pk>/reply/",
        views.RefundRequestReplyApi.as_view(),
        name="api-refund-request-reply",
    ),
    path("seller/ledger/", views.SellerLedgerApi.as_view(), name="api-seller-ledger"),
    path(
        "seller/ledger/<int:pk>/dispute/",
        views.SellerDeductionDisputeApi.as_view(),
        name="api-seller-deduction-dispute",
    ),
    path(
        "seller/refund-requests/",
        views.SellerRefundRequestListApi.as_view(),
        name="api-seller-refund-requests",
    ),
    path(
        "seller/refund-requests/<int:pk>/verify/",
        views.SellerRefundRequestVerifyApi.as_view(),
        name="api-seller-refund-request-verify",
    ),
    *(
        # One URL per decision, hyphenated: /api/support/refund-requests/7/partially-approve/
        path(
            f"support/refund-requests/<int:pk>/{action}/",
            view.as_view(),
            name=f"api-support-refund-request-{action}",
        )
        for action, view in SUPPORT_ACTIONS.items()
    ),
]
