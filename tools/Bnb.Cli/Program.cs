using System.CommandLine;
using Bnb.Cli;

var libraries = new Option<string[]>("--library", "-l")
{
    Description = "Backend library file or directory to load first (repeatable); BNB_LIBRARY_PATH and the app directory are searched too",
    Arity = ArgumentArity.ZeroOrMore,
    AllowMultipleArgumentsPerToken = false,
};

var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
var info = new Command("info", "Show load attempts, CPU features (and OS support), backends with ABI and capabilities, devices");
info.Options.Add(json);
info.Options.Add(libraries);
info.SetAction(r => InfoCommand.Run(r.GetValue(json), r.GetValue(libraries) ?? []));

var rows = new Option<int>("--rows") { Description = "Rows of the sample weight", DefaultValueFactory = _ => 1024 };
var cols = new Option<int>("--cols") { Description = "Columns of the sample weight", DefaultValueFactory = _ => 1024 };
var seed = new Option<int>("--seed") { Description = "Seed of the sample weight", DefaultValueFactory = _ => 20240601 };
var demo = new Command("demo", "Quantize a built-in sample weight matrix in every format through every loaded backend");
demo.Options.Add(rows);
demo.Options.Add(cols);
demo.Options.Add(seed);
demo.Options.Add(libraries);
demo.SetAction(r => DemoCommand.Run(r.GetValue(rows), r.GetValue(cols), r.GetValue(seed), r.GetValue(libraries) ?? []));

var root = new RootCommand("bnb — k-bit quantization backends (bitsandbytes numerics) behind one C ABI");
root.Subcommands.Add(info);
root.Subcommands.Add(demo);
return root.Parse(args).Invoke();
