# SPDX-License-Identifier: Apache-2.0
# SARIF 2.1.0 for the example's checkers (sourced). Each checker prints its findings as
# tab-separated lines, RULE LEVEL FILE LINE MESSAGE; sarif_write turns them into one run.

# sarif_write OUT TOOL RULES FINDINGS: RULES has lines "ID<TAB>LEVEL<TAB>DESCRIPTION".
sarif_write() {
    awk -F '\t' -v tool="$2" '
        function quote(text) {
            gsub(/\\/, "\\\\", text)
            gsub(/"/, "\\\"", text)
            gsub(/\t/, "\\t", text)
            return "\"" text "\""
        }
        FNR == NR {
            rules = rules (rules == "" ? "" : ",") "\n            {\"id\": " quote($1) \
                ", \"defaultConfiguration\": {\"level\": " quote($2) "}" \
                ", \"shortDescription\": {\"text\": " quote($3) "}}"
            next
        }
        {
            results = results (results == "" ? "" : ",") "\n        {\"ruleId\": " quote($1) \
                ", \"level\": " quote($2) ", \"message\": {\"text\": " quote($5) "}" \
                ", \"locations\": [{\"physicalLocation\": {\"artifactLocation\": {\"uri\": " quote($3) "}" \
                ", \"region\": {\"startLine\": " $4 "}}}]}"
        }
        END {
            print "{"
            print "  \"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\","
            print "  \"version\": \"2.1.0\","
            print "  \"runs\": [{"
            print "    \"tool\": {\"driver\": {\"name\": " quote(tool) ", \"rules\": [" rules "\n    ]}},"
            print "    \"results\": [" results "\n    ]"
            print "  }]"
            print "}"
        }
    ' "$3" "$4" >"$1.tmp"
    mv "$1.tmp" "$1"
}
