# kept as a source of the derivation: its NAR hash is a material of the attestation
