"""The LeadGenius lead vocabulary (SPEC Part A3), shared by transforms, loader and sandbox."""

from __future__ import annotations

AI_FIELDS: tuple[str, ...] = (
    "aiLeadScore",
    "aiQualification",
    "aiNextAction",
    "aiColdEmail",
    "aiInterest",
    "aiLinkedinConnect",
    "aiCompetitorAnalysis",
    "aiEngagementLevel",
    "aiPurchaseWindow",
    "aiDecisionMakerRole",
    "aiSentiment",
    "aiSocialEngagement",
    "aiNurturingStage",
    "aiBudgetEstimation",
    "aiRiskScore",
    "aiProductFitScore",
)

# Fields the API accepts on create and update; anything else is a 500 (quirk 2).
LEAD_FIELDS: tuple[str, ...] = (
    "client_id",
    "firstName",
    "lastName",
    "fullName",
    "email",
    "phoneNumber",
    "title",
    "companyName",
    "companyDomain",
    "companyUrl",
    "linkedinUrl",
    "notes",
    "status",
    "source",
    *AI_FIELDS,
)

# Set by the server; sending any of them on create is a 500 like `phone`.
SERVER_FIELDS: tuple[str, ...] = ("id", "company_id", "owner", "createdAt", "updatedAt")

# Stable export column order: the lead fields, then the server fields.
EXPORT_COLUMNS: tuple[str, ...] = ("id", *LEAD_FIELDS, "company_id", "owner", "createdAt", "updatedAt")

LEAD_FIELD_SET: frozenset[str] = frozenset(LEAD_FIELDS)
