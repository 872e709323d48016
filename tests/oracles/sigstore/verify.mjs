// Verifies a Sigstore bundle with a public key, as an auditor's tooling would:
//   node verify.mjs BUNDLE PUBLIC_KEY_PEM [ARTIFACT]
// ARTIFACT is required for a messageSignature bundle and absent for a dsseEnvelope one.
// Exit 0: verified. Exit 1: rejected (the reason on stderr).
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const [bundlePath, keyPath, artifactPath] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const key = createPublicKey(readFileSync(keyPath, 'utf8'));
  const trust = toTrustMaterial(
    { mediaType: '', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] },
    (wanted) => {
      if (wanted !== hint) throw new Error(`no key for hint ${wanted}`);
      return { publicKey: key, validFor: () => true };
    },
  );
  const artifact = artifactPath === undefined ? undefined : readFileSync(artifactPath);
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundle, artifact));
  console.log(`verified ${bundlePath} (${bundle.mediaType}, hint ${hint})`);
} catch (error) {
  console.error(`rejected ${bundlePath}: ${error.message}`);
  process.exit(1);
}
