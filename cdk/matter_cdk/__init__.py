"""Matter PKI on AWS CDK v2: stacks and constructs around AWS Private CA.

Certificate content (subjects, template ARNs, ApiPassthrough, key and signing algorithms) comes
from ``matter_pki.profiles``; this package only places it into CloudFormation resources.
"""

from __future__ import annotations

#: Tag every Matter CA carries; IAM conditions use ``aws:ResourceTag/matterCAType``.
CA_TYPE_TAG = "matterCAType"
CA_TYPE_PAA = "paa"
CA_TYPE_PAI = "pai"

#: IAM path of every role this app creates.
ROLE_PATH = "/MatterPKI/"

#: CloudWatch metric namespace of the audit metric filters and alarms.
METRIC_NAMESPACE = "MatterPKI"
