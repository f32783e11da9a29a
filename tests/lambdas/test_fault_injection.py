"""Fault injection: 1,000 CSRs, 20 % of Private CA and S3 HTTP attempts failing transiently, every message twice.

Faults are injected at the HTTP level (``before-send``), so botocore's retry mode sees and retries them
as on AWS. Private CA faults include "issued, but the answer was lost" (a 500 after the certificate
exists): the claim and the IdempotencyToken are what keep a retry from issuing a second certificate.
The CA is the MODEL (``ModelPrivateCa``), S3 and SQS are moto with real event notifications; botocore's
backoff sleeps are skipped.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.pipeline import PipelineConfig
from matter_pki.validate import validate_att_cert
from tests.lambdas.conftest import BUCKET, make_harness
from tests.lambdas.fakes import REGION, TEST_RETRIES, ModelPrivateCa, inject_s3_faults

CSRS = int(os.environ.get("FI_CSRS", "1000"))  # smaller runs while debugging
FAULT_RATE = 0.2
CHUNK = 100


def _csrs(n: int) -> list[bytes]:
    subject = x509.Name([])
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(n)]
    return [
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(k, hashes.SHA256())
        .public_bytes(Encoding.DER)
        for k in keys
    ]


def test_thousand_csrs_with_faults_and_duplicates_give_exactly_one_dac_each(aws_env: None) -> None:
    # GIVEN a CA and a signer S3 client failing 20 % of HTTP attempts transiently, botocore retrying 4 times
    fake = ModelPrivateCa(fault_rate=0.0, rng=random.Random(11))
    paa = fake.add_paa()
    pai = fake.add_pai(paa, pid=0x8000)
    s3 = boto3.client("s3", region_name=REGION, config=TEST_RETRIES)
    s3_faults = inject_s3_faults(s3, rate=FAULT_RATE, rng=random.Random(12))
    cfg = PipelineConfig(workers=4, waiter_delay=0, csr_bucket=BUCKET)
    h = make_harness(pca=fake, s3_client=s3, config=cfg)
    keys = [f"{pai}/8000/device-{i:04}.csr" for i in range(CSRS)]
    fake.fault_rate = FAULT_RATE
    # WHEN the CSRs arrive in uploads of 100 and every message is delivered twice, shuffled across batches
    # (chunks keep moto's SQS, whose ReceiveMessage is quadratic in the queue length, fast)
    bodies = _csrs(CSRS)
    shuffle = random.Random(14)
    for start in range(0, CSRS, CHUNK):
        for key, body in zip(keys[start : start + CHUNK], bodies[start : start + CHUNK], strict=True):
            h.upload(key, body)
        h.drain(duplicate=True, shuffle=shuffle, rounds=30)
    # (a message whose receives all failed is in the DLQ, as with the stack's redrive policy; the
    # operator's re-drive puts it back, and it completes like any other)
    redriven = len(h.dead_letters)
    while h.dead_letters:
        for m in h.dead_letters:
            h.sqs.send_message(QueueUrl=h.queue_url, MessageBody=m["Body"])
        h.dead_letters.clear()
        h.receives.clear()
        h.drain(duplicate=True, shuffle=shuffle, rounds=30)
    # THEN the bucket holds exactly the 1,000 CSRs and 1,000 DACs, and no .err
    objects = h.keys()
    pems = sorted(k for k in objects if k.endswith(".pem"))
    assert pems == sorted(k[:-4] + ".pem" for k in keys)
    assert len(objects) == 2 * CSRS
    # AND no two DACs share a serial, and the CA issued exactly one certificate per CSR
    ca = fake.cas[pai]
    assert ca.cert is not None
    pai_der, paa_der = ca.cert.public_bytes(Encoding.DER), fake.cas[paa].cert.public_bytes(Encoding.DER)  # type: ignore[union-attr]
    serials = Counter()
    at = datetime.now(UTC) + timedelta(seconds=2)
    for key in pems:
        der = x509.load_pem_x509_certificate(h.read(key)).public_bytes(Encoding.DER)
        serials[x509.load_der_x509_certificate(der).serial_number] += 1
        assert validate_att_cert(paa=paa_der, pai=pai_der, dac=der, at=at, mode="commissioner").ok
    assert len(serials) == CSRS and max(serials.values()) == 1
    assert len(fake.certificates) == CSRS
    # AND the faults really happened, including lost IssueCertificate answers and SQS redeliveries
    assert (
        sum(fake.faults.values()) > CSRS // 4 and fake.faults["IssueCertificate:after-commit"] > CSRS // 100
    )
    assert sum(s3_faults.values()) > CSRS // 2
    assert any(inv["batchItemFailures"] for inv in h.invocations)
    # (at 20 % failed HTTP attempts a first delivery makes ~8 S3 calls: key binding, claim, head, publish...;
    # a message whose receives all failed is rare, not absent)
    assert redriven < CSRS // 10
