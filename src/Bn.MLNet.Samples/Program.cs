using Bn.MLNet.Samples.Commands;

// Before anything loads libtorch: passive OpenMP waiting (see OpenMpWaitPolicy for the measurements behind it).
OpenMpWaitPolicy.PreferPassive();

return await Cli.CreateRootCommand().Parse(args).InvokeAsync();
