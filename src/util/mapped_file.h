// A read-only memory-mapped file. Model weights are used in place from the mapping, so loading a
// model costs no copy and the page cache is shared between processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace g4 {

class MappedFile {
 public:
  // Maps the whole file read-only. Throws g4::Error naming the path if it cannot.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints that [offset, offset+len) will be read soon (madvise WILLNEED). Never fails.
  void Prefetch(size_t offset, size_t len) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace g4
