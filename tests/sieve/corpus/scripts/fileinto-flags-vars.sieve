require ["fileinto", "imap4flags", "variables"];
set "f" "\\Seen \\Answered";
fileinto :flags "${f}" "F1";
setflag "x";
fileinto "F2";
fileinto :flags "" "F3";
removeflag "x";
addflag ["a", "b c"];
keep;
