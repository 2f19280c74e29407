require ["fileinto", "variables", "regex"];
if header :regex "subject" "^(re|fwd?): *(.*)$" { fileinto "g-${1}-${2}"; }
if address :regex :all "from" "^([^@]+)@(.+)$" { fileinto "a-${1}-${2}"; }
if header :regex "subject" "(x)?report" { fileinto "opt-${1}-${0}"; }
if header :regex "x-flag" "^t" { fileinto "flag-${0}"; }
if header :regex "subject" "[[:digit:]]{4}" { fileinto "digits-${0}"; }
