require "vacation";
vacation "Gone fishing.";
