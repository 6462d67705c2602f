using System.Text;

namespace Bn.MLNet.Networks;

/// <summary>The file format of <see cref="BatchNormCnnNetwork.Save(Stream)"/> and <see cref="BatchNormCnnNetwork.Load(Stream)"/>.</summary>
internal static class NetworkFile
{
    // The header keeps the name the type had when the format was defined, so files saved before still load.
    // Version history: /1 (Bn.MLNet 0.1): first version. /2: the architecture JSON may carry "task" and "standardization";
    // a /1 file has neither, and reads as multiclass with per-channel standardization, as it was written.
    internal const string Magic = "Bn.MLNet.BnCnn/2";
    internal const string MagicVersion1 = "Bn.MLNet.BnCnn/1";

    public static void Write(BatchNormCnnNetwork network, Stream stream)
    {
        // Binary format (BinaryWriter, UTF-8 strings with a 7-bit length prefix):
        //   string  "Bn.MLNet.BnCnn/2" (version 1 files, "Bn.MLNet.BnCnn/1", are read too)
        //   string  the architecture JSON (NetworkArchitecture.ToJson)
        //   ...     TorchSharp's state-dict format (Module.save): every parameter and buffer, the input
        //           standardization and the BN running statistics included
        ArgumentNullException.ThrowIfNull(stream);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(network.Architecture.ToJson());
        network.save(writer);
        writer.Flush();
    }

    /// <exception cref="InvalidDataException">The stream does not hold a saved network.</exception>
    public static BatchNormCnnNetwork Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        string magic;
        try
        {
            magic = reader.ReadString();
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException("Not a saved BatchNormCnnNetwork: the stream is empty or truncated.", ex);
        }

        if (magic != Magic && magic != MagicVersion1)
            throw new InvalidDataException($"Not a saved BatchNormCnnNetwork (header '{magic}', expected '{Magic}').");

        NetworkArchitecture architecture = NetworkArchitecture.FromJson(reader.ReadString());
        if (magic == MagicVersion1 && architecture.IsTabular)
            architecture.Standardization = StandardizationKind.PerChannel;
        var network = new BatchNormCnnNetwork(architecture);
        try
        {
            network.load(reader, strict: true);
            network.eval();
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }
}
