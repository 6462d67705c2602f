using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Training;

/// <summary>
/// Named tensors written to and read back from a checkpoint exactly (raw bytes), and strictly: the reader must find the
/// same names, in the same order, with the same dtype and shape as the tensors it fills.
/// </summary>
internal static class TensorList
{
    // Binary format: int32 count; per tensor: string name, int32 dtype (ScalarType), int32 rank, int64[rank] shape,
    // int64 byte count, the bytes (the tensor's values, contiguous, on the CPU).
    public static void Write(BinaryWriter w, IReadOnlyList<(string Name, Tensor Value)> tensors)
    {
        w.Write(tensors.Count);
        foreach (var (name, value) in tensors)
        {
            using Tensor cpu = value.detach().cpu().contiguous();
            w.Write(name);
            w.Write((int)cpu.dtype);
            w.Write(cpu.shape.Length);
            foreach (long d in cpu.shape)
                w.Write(d);
            ReadOnlySpan<byte> bytes = cpu.bytes;
            w.Write((long)bytes.Length);
            w.Write(bytes);
        }
    }

    /// <summary>Reads tensors written by <see cref="Write"/> into <paramref name="targets"/>, in place.</summary>
    /// <exception cref="InvalidDataException">A name, dtype, shape or length differs, or the count does.</exception>
    public static void ReadInto(BinaryReader r, IReadOnlyList<(string Name, Tensor Value)> targets, string what)
    {
        int count = r.ReadInt32();
        if (count != targets.Count)
            throw new InvalidDataException($"{what}: {count} tensors stored, {targets.Count} expected.");
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in targets)
        {
            string stored = r.ReadString();
            var dtype = (ScalarType)r.ReadInt32();
            long[] shape = new long[r.ReadInt32()];
            for (int i = 0; i < shape.Length; i++)
                shape[i] = r.ReadInt64();
            if (stored != name || dtype != target.dtype || !shape.SequenceEqual(target.shape))
            {
                throw new InvalidDataException(
                    $"{what}: stored '{stored}' {dtype}[{string.Join(", ", shape)}] where '{name}' {target.dtype}[{string.Join(", ", target.shape)}] was expected.");
            }

            long length = r.ReadInt64();
            byte[] bytes = r.ReadBytes(checked((int)length));
            if (bytes.Length != length)
                throw new EndOfStreamException();
            using Tensor cpu = torch.empty(shape, dtype);
            bytes.CopyTo(cpu.bytes);
            target.copy_(cpu);
        }
    }
}
