using Bn.MLNet.Samples.Commands;

return await Cli.CreateRootCommand().Parse(args).InvokeAsync();
