using TorchSharp;

Console.WriteLine($"Bn.MLNet samples: TorchSharp loaded, {torch.get_num_threads()} threads.");
