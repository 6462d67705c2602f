using System.CommandLine;
using Bn.MLNet.Samples.Commands;

// Before anything loads libtorch: passive OpenMP waiting (see OpenMpWaitPolicy for the measurements behind it).
OpenMpWaitPolicy.PreferPassive();

var root = new RootCommand("Bn.MLNet samples: Batch Normalization (Ioffe & Szegedy 2015) for ML.NET with TorchSharp.");
root.Add(TrainCommand.Create());
root.SetAction(_ =>
{
    Console.WriteLine("Bn.MLNet samples. Commands:");
    Console.WriteLine("  train    train the BN CNN on Fashion-MNIST and evaluate it on the test set (see 'train --help')");
    Console.WriteLine("The main ML.NET pipeline job will run here without arguments; for now, use a command.");
    return 0;
});

return await root.Parse(args).InvokeAsync();
