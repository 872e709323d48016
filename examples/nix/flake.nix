# An example flake for pipelines/nix.toml. Its derivations use the host's /bin/sh as builder,
# so it builds without nixpkgs (offline, in CI); a real project would use nixpkgs' stdenv.
{
  outputs = { self }:
    let
      sh = name: script: derivation {
        inherit name script;
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" script ];
      };
    in
    {
      packages.x86_64-linux = rec {
        greeting = sh "greeting" "echo 'hello from nix' > $out";
        hello = derivation {
          name = "hello";
          system = "x86_64-linux";
          builder = "/bin/sh";
          src = ./hello.sh;
          args = [ "-c" "/bin/mkdir -p $out/bin; read -r text < ${greeting}; printf '#!/bin/sh\\necho \"%s\"\\n' \"$text\" > $out/bin/hello; /bin/chmod +x $out/bin/hello" ];
        };
      };
    };
}
