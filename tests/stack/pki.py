"""The certificates and keys of a local control plane, made with the ``cryptography`` package (no openssl needed).

One CA signs the serving certificates (kube-apiserver, the proxy in front of it) and the client certificates (the admin
identity of kube-controller-manager, users authenticating with x509); a second CA, the front-proxy CA, signs the proxy's
client certificate, with which it passes on the identity of a client-certificate user (the requestheader authenticator).
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import secrets
from pathlib import Path

import yaml

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names a client may reach kube-apiserver (and the proxy) by: loopback, and what in-cluster clients use.
SERVING_NAMES = ('localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local')
SERVING_IPS = ('127.0.0.1', '10.0.0.1')
VALIDITY = datetime.timedelta(days=7)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations=()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name(attributes + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Authority:
    """A CA: its key and certificate, and what it signs."""

    def __init__(self, common_name: str):
        self.key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = _name(common_name)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + VALIDITY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, common_name: str, organizations=(), server: bool = False):
        """(key, certificate) for a client (``server=False``) or a server with SERVING_NAMES and SERVING_IPS."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(common_name, organizations)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False))
        if server:
            names = [x509.DNSName(n) for n in SERVING_NAMES] + [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVING_IPS]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())


class PKI:
    """Every file of one control plane's PKI, written into ``directory`` (paths as attributes)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        p = self.dir
        self.ca_crt, self.ca_key = p / 'ca.crt', p / 'ca.key'
        self.apiserver_crt, self.apiserver_key = p / 'apiserver.crt', p / 'apiserver.key'
        self.proxy_crt, self.proxy_key = p / 'proxy.crt', p / 'proxy.key'
        self.admin_crt, self.admin_key = p / 'admin.crt', p / 'admin.key'
        self.front_proxy_ca_crt = p / 'front-proxy-ca.crt'
        self.front_proxy_client_crt, self.front_proxy_client_key = p / 'front-proxy-client.crt', p / 'front-proxy-client.key'
        self.sa_key, self.sa_pub = p / 'sa.key', p / 'sa.pub'
        self.tokens_csv = p / 'tokens.csv'
        self.tokens: dict[str, str] = {}
        self._ca: Authority | None = None

    def generate(self, users: dict) -> PKI:
        """Write everything; ``users`` maps a static-token user name to its groups (tokens.csv, tokens in ``self.tokens``)."""
        ca = self._ca = Authority('cloudkit-test-ca')
        _write_cert(self.ca_crt, ca.cert)
        _write_key(self.ca_key, ca.key)
        for crt, key_path, common_name, organizations, server in (
                (self.apiserver_crt, self.apiserver_key, 'kube-apiserver', (), True),
                (self.proxy_crt, self.proxy_key, 'cloudkit-test-proxy', (), True),
                (self.admin_crt, self.admin_key, 'cloudkit-admin', ('system:masters',), False)):
            key, cert = ca.issue(common_name, organizations, server)
            _write_key(key_path, key)
            _write_cert(crt, cert)
        front = Authority('front-proxy-ca')
        _write_cert(self.front_proxy_ca_crt, front.cert)
        key, cert = front.issue('front-proxy-client')
        _write_key(self.front_proxy_client_key, key)
        _write_cert(self.front_proxy_client_crt, cert)
        # Service account tokens: kube-apiserver signs TokenRequests with it, kube-controller-manager legacy token Secrets.
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(self.sa_key, sa)
        self.sa_pub.write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        lines = []
        for pos, (user, groups) in enumerate(users.items()):
            token = secrets.token_hex(20)
            self.tokens[user] = token
            lines.append(f'{token},{user},uid-{pos},"{",".join(groups)}"')
        self.tokens_csv.write_text('\n'.join(lines) + '\n')
        os.chmod(self.tokens_csv, 0o600)
        return self

    def client_certificate(self, name: str, common_name: str, organizations=()) -> tuple[Path, Path]:
        """Issue a client certificate for ``common_name`` in groups ``organizations``; returns (certificate, key) paths."""
        key, cert = self._ca.issue(common_name, organizations)
        crt_path, key_path = self.dir / f'{name}.crt', self.dir / f'{name}.key'
        _write_key(key_path, key)
        _write_cert(crt_path, cert)
        return crt_path, key_path


def _b64(path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def certificate_user(cert, key) -> dict:
    """A kubeconfig user entry authenticating with the client certificate and key files given (inline data)."""
    return {'client-certificate-data': _b64(cert), 'client-key-data': _b64(key)}


def kubeconfig_dict(server: str, user: dict, ca_file=None, namespace: str = 'default', name: str = 'kubeapi') -> dict:
    """A kubeconfig with one cluster/user/context named ``name``; the CA inline when ``ca_file`` is given."""
    cluster = {'server': server}
    if ca_file is not None:
        cluster['certificate-authority-data'] = _b64(ca_file)
    return {
        'apiVersion': 'v1', 'kind': 'Config', 'preferences': {}, 'current-context': name,
        'clusters': [{'name': name, 'cluster': cluster}],
        'users': [{'name': name, 'user': user}],
        'contexts': [{'name': name, 'context': {'cluster': name, 'user': name, 'namespace': namespace}}],
    }


def write_kubeconfig(path, doc: dict) -> str:
    """Write kubeconfig ``doc`` to ``path``, readable by its owner only; returns the path."""
    path = str(path)
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(doc, handle, sort_keys=False)
    os.chmod(path, 0o600)
    return path
